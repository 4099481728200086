#include "vtk_widget.h"

#include <QFile>
#include <QFileInfo>
#include <QMouseEvent>
#include <QOpenGLContext>
#include <QOpenGLExtraFunctions>
#include <QOpenGLFramebufferObject>
#include <QOpenGLWindow>
#include <QPainter>
#include <QVBoxLayout>
#include <QWheelEvent>

#include <algorithm>
#include <utility>
#include <vector>

#include <vtkCallbackCommand.h>
#include <vtkActor.h>
#include <vtkActorCollection.h>
#include <vtkAxesActor.h>
#include <vtkCaptionActor2D.h>
#include <vtkCamera.h>
#include <vtkCommand.h>
#include <vtkGL2PSExporter.h>
#include <vtkGenericOpenGLRenderWindow.h>
#include <vtkOpenGLFramebufferObject.h>
#include <vtkOpenGLState.h>
#include <vtkProperty.h>
#include <vtkRenderer.h>
#include <vtkTextActor.h>
#include <vtkTextProperty.h>

namespace ltlab::ui {

// The native GL window: its GL calls and input go to the VtkWidget.
class VtkGlWindow : public QOpenGLWindow {
public:
    explicit VtkGlWindow(VtkWidget* host) : host_(host) {}

protected:
    void initializeGL() override { host_->initializeGl(); }
    void resizeGL(int w, int h) override { host_->resizeGl(w, h); }
    void paintGL() override { host_->paintGl(); }
    void mousePressEvent(QMouseEvent* e) override { host_->mousePressEvent(e); }
    void mouseMoveEvent(QMouseEvent* e) override { host_->mouseMoveEvent(e); }
    void mouseReleaseEvent(QMouseEvent* e) override { host_->mouseReleaseEvent(e); }
    void mouseDoubleClickEvent(QMouseEvent* e) override { host_->mouseDoubleClickEvent(e); }
    void wheelEvent(QWheelEvent* e) override { host_->wheelEvent(e); }

private:
    VtkWidget* host_;
};

VtkWidget::VtkWidget(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true); // hover shows the numbers under the cursor
    gl_ = new VtkGlWindow(this);
    QSurfaceFormat format = gl_->format(); // VTK's framebuffers follow the window's: give it what an FBO would have
    format.setAlphaBufferSize(8);
    format.setDepthBufferSize(24);
    format.setStencilBufferSize(8);
    gl_->setFormat(format);
    QWidget* container = QWidget::createWindowContainer(gl_, this);
    container->setMouseTracking(true);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(container);
    window_ = vtkSmartPointer<vtkGenericOpenGLRenderWindow>::New();
    renderer_ = vtkSmartPointer<vtkRenderer>::New();
    renderer_->SetBackground(1.0, 1.0, 1.0);
    window_->AddRenderer(renderer_);
    window_->SetNumberOfLayers(2); // the scene, the axis triad
    window_->SetMultiSamples(0);
    // VTK asks the host to make its context current and whether it is current;
    // the widget answers with its own context (paintGL shows the frame).
    auto on_event = vtkSmartPointer<vtkCallbackCommand>::New();
    on_event->SetClientData(this);
    on_event->SetCallback([](vtkObject*, unsigned long id, void* client, void* call) {
        auto* self = static_cast<VtkWidget*>(client);
        switch (id) {
        case vtkCommand::WindowMakeCurrentEvent:
            // The context alone: QOpenGLWindow::makeCurrent would also bind the
            // window's framebuffer over the one VTK is to draw into.
            if (self->gl_->context()) self->gl_->context()->makeCurrent(self->gl_);
            break;
        case vtkCommand::WindowIsCurrentEvent:
            *static_cast<bool*>(call) = self->gl_->context() && QOpenGLContext::currentContext() == self->gl_->context();
            break;
        default:
            break;
        }
    });
    window_->AddObserver(vtkCommand::WindowMakeCurrentEvent, on_event);
    window_->AddObserver(vtkCommand::WindowIsCurrentEvent, on_event);
    auto on_frame = vtkSmartPointer<vtkCallbackCommand>::New(); // before each frame of the scene
    on_frame->SetClientData(this);
    on_frame->SetCallback([](vtkObject*, unsigned long, void* self, void*) {
        static_cast<VtkWidget*>(self)->placeAxesMarker();
    });
    renderer_->AddObserver(vtkCommand::StartEvent, on_frame);
}

void VtkWidget::setAxisNames(const QStringList& names) {
    if (names.size() != 3) {
        if (marker_renderer_) marker_renderer_->SetDraw(false);
        return;
    }
    if (!marker_renderer_) {
        marker_renderer_ = vtkSmartPointer<vtkRenderer>::New();
        marker_renderer_->SetLayer(1);
        marker_renderer_->InteractiveOff();
        window_->AddRenderer(marker_renderer_);
        axes_ = vtkSmartPointer<vtkAxesActor>::New();
        axes_->SetShaftTypeToLine();
        axes_->SetTotalLength(1.0, 1.0, 1.0);
        double colours[3][3] = {{0.75, 0.1, 0.1}, {0.1, 0.55, 0.1}, {0.1, 0.2, 0.8}};
        vtkProperty* shafts[3] = {axes_->GetXAxisShaftProperty(), axes_->GetYAxisShaftProperty(), axes_->GetZAxisShaftProperty()};
        vtkProperty* tips[3] = {axes_->GetXAxisTipProperty(), axes_->GetYAxisTipProperty(), axes_->GetZAxisTipProperty()};
        vtkCaptionActor2D* captions[3] = {axes_->GetXAxisCaptionActor2D(), axes_->GetYAxisCaptionActor2D(),
                                          axes_->GetZAxisCaptionActor2D()};
        for (int j = 0; j < 3; ++j) {
            shafts[j]->SetColor(colours[j]);
            shafts[j]->SetLineWidth(2.0f);
            tips[j]->SetColor(colours[j]);
            vtkTextProperty* text = captions[j]->GetCaptionTextProperty();
            text->SetColor(colours[j]);
            text->ShadowOff();
            text->ItalicOff();
            text->BoldOff();
            captions[j]->GetTextActor()->SetTextScaleModeToNone(); // a fixed font size, not fitted to a box
        }
        setMarkerFontScale(1);
        marker_renderer_->AddActor(axes_);
    }
    marker_renderer_->SetDraw(true);
    axes_->SetXAxisLabelText(names[0].toUtf8().constData());
    axes_->SetYAxisLabelText(names[1].toUtf8().constData());
    axes_->SetZAxisLabelText(names[2].toUtf8().constData());
    requestRender();
}

QStringList VtkWidget::axisNames() const {
    if (!marker_renderer_ || !marker_renderer_->GetDraw()) return {};
    return {axes_->GetXAxisLabelText(), axes_->GetYAxisLabelText(), axes_->GetZAxisLabelText()};
}

void VtkWidget::setMarkerFontScale(int scale) {
    if (!axes_) return;
    for (vtkCaptionActor2D* caption : {axes_->GetXAxisCaptionActor2D(), axes_->GetYAxisCaptionActor2D(),
                                       axes_->GetZAxisCaptionActor2D()})
        caption->GetCaptionTextProperty()->SetFontSize(12 * scale);
}

void VtkWidget::placeAxesMarker() {
    if (!marker_renderer_ || !marker_renderer_->GetDraw()) return;
    // 130 x 130 widget pixels, as a fraction of the window (an export at scale s keeps the fraction)
    marker_renderer_->SetViewport(0, 0, std::min(1.0, 130.0 / std::max(1, width())), std::min(1.0, 130.0 / std::max(1, height())));
    vtkCamera* scene = renderer_->GetActiveCamera();
    vtkCamera* camera = marker_renderer_->GetActiveCamera();
    double direction[3];
    scene->GetDirectionOfProjection(direction);
    camera->SetFocalPoint(0, 0, 0);
    camera->SetPosition(-direction[0], -direction[1], -direction[2]);
    camera->SetViewUp(scene->GetViewUp());
    marker_renderer_->ResetCamera();
    camera->Zoom(1.3); // ResetCamera leaves room for any orientation: less is enough
}

vtkRenderer* VtkWidget::renderer() const { return renderer_; }

VtkWidget::~VtkWidget() {
    if (initialized_) {
        gl_->makeCurrent();
        window_->Finalize();
        gl_->doneCurrent();
    }
}

double VtkWidget::pixelRatio() const { return gl_->devicePixelRatio(); }

void VtkWidget::requestRender() { gl_->update(); }

QImage VtkWidget::grabFramebuffer() { return initialized_ ? gl_->grabFramebuffer() : QImage(); }

QPixmap VtkWidget::grabWithScenes(QWidget* top) {
    QPixmap shot = top->grab();
    QPainter painter(&shot);
    for (VtkWidget* v : top->findChildren<VtkWidget*>())
        if (v->isVisible() && v->initialized_)
            painter.drawImage(QRect(v->mapTo(top, QPoint(0, 0)), v->size()), v->grabFramebuffer());
    return shot;
}

void VtkWidget::initializeGl() {
    window_->SetReadyForRendering(true);
    window_->SetOwnContext(0);
    window_->SetForceMaximumHardwareLineWidth(1);
    window_->OpenGLInitContext();
    initialized_ = true;
}

void VtkWidget::resizeGl(int w, int h) {
    const double dpr = pixelRatio();
    window_->SetSize(static_cast<int>(w * dpr), static_cast<int>(h * dpr));
}

void VtkWidget::paintGl() {
    if (!initialized_) return;
    // Qt leaves its own GL state behind: let VTK re-read what it tracks.
    window_->GetState()->Reset();
    window_->Render();
    ++frames_;
    gl_->makeCurrent();
    QOpenGLExtraFunctions* f = gl_->context()->extraFunctions();
    const int w = static_cast<int>(gl_->width() * pixelRatio()), h = static_cast<int>(gl_->height() * pixelRatio());
    f->glBindFramebuffer(GL_DRAW_FRAMEBUFFER, gl_->defaultFramebufferObject());
    f->glDisable(GL_SCISSOR_TEST);
    window_->GetState()->vtkglDisable(GL_SCISSOR_TEST);
    int* size = window_->GetRenderFramebuffer()->GetLastSize();
    window_->BlitDisplayFramebuffer(0, 0, 0, size[0], size[1], 0, 0, w, h, GL_COLOR_BUFFER_BIT,
                                   size[0] == w && size[1] == h ? GL_NEAREST : GL_LINEAR); // same size: a plain copy
    f->glBindFramebuffer(GL_FRAMEBUFFER, gl_->defaultFramebufferObject());
    f->glViewport(0, 0, w, h);
}

void VtkWidget::resetCamera() {
    renderer_->ResetCamera();
    renderer_->GetActiveCamera()->Zoom(1.25); // ResetCamera fits the bounding sphere: a lot of margin
    requestRender();
}

// The frame rendered off screen at `scale` times the window's size into a
// framebuffer object of ours (VTK blits its finished frame into the draw
// framebuffer bound when it starts).
QImage VtkWidget::renderImage(int scale) {
    if (!initialized_) return {};
    gl_->makeCurrent();
    QOpenGLExtraFunctions* f = gl_->context()->extraFunctions();
    GLint max_size = 0;
    f->glGetIntegerv(GL_MAX_RENDERBUFFER_SIZE, &max_size);
    const int* size = window_->GetSize();
    const int w = size[0], h = size[1];
    scale = std::clamp(scale, 1, std::max(1, std::min<int>(max_size / std::max(1, w), max_size / std::max(1, h))));
    QOpenGLFramebufferObject target(w * scale, h * scale);
    window_->SetSize(w * scale, h * scale);
    // Points and lines are sized in pixels: as thick on the larger picture as on screen.
    std::vector<std::pair<vtkProperty*, std::pair<float, float>>> sizes;
    vtkActorCollection* actors = renderer_->GetActors();
    actors->InitTraversal();
    while (vtkActor* actor = actors->GetNextActor()) {
        vtkProperty* p = actor->GetProperty();
        sizes.push_back({p, {p->GetPointSize(), p->GetLineWidth()}});
        p->SetPointSize(p->GetPointSize() * float(scale));
        p->SetLineWidth(p->GetLineWidth() * float(scale));
    }
    setMarkerFontScale(scale);
    target.bind(); // VTK blits its finished frame into the framebuffer bound when it starts
    window_->GetState()->Reset();
    window_->Render();
    // VTK leaves alpha 0 where nothing was drawn: read the pixels as opaque.
    const QImage frame = target.toImage(true);
    QImage image = QImage(frame.constBits(), frame.width(), frame.height(), frame.bytesPerLine(), QImage::Format_RGB32).copy();
    for (const auto& [p, size] : sizes) {
        p->SetPointSize(size.first);
        p->SetLineWidth(size.second);
    }
    setMarkerFontScale(1);
    f->glBindFramebuffer(GL_FRAMEBUFFER, gl_->defaultFramebufferObject());
    window_->SetSize(w, h);
    gl_->doneCurrent();
    requestRender();
    return image;
}

bool VtkWidget::savePng(const QString& path, int scale) {
    QFile::remove(path); // success below means this export wrote it
    const QImage image = renderImage(std::clamp(scale, 1, 8));
    return !image.isNull() && image.save(path, "PNG") && QFileInfo(path).size() > 0;
}

bool VtkWidget::savePdf(const QString& path, int scale) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (!initialized_ || suffix != "pdf") return false;
    gl_->makeCurrent();
    window_->GetState()->Reset();
    auto exporter = vtkSmartPointer<vtkGL2PSExporter>::New(); // the OpenGL2 implementation, by VTK's factory
    exporter->SetRenderWindow(window_);
    exporter->SetFileFormat(vtkGL2PSExporter::PDF_FILE);
    // GL2PS appends the (lower-case) suffix itself; the file is moved to `path` after.
    const QString prefix = path.left(path.size() - suffix.size() - 1);
    const QString written = prefix + "." + suffix;
    QFile::remove(path);
    QFile::remove(written);
    exporter->SetFilePrefix(prefix.toLocal8Bit().constData());
    exporter->SetCompress(true); // where GL2PS was built with zlib (Debian's is not)
    exporter->Write3DPropsAsRasterImageOn(); // shaded spheres do not survive as vector primitives
    exporter->SetRasterExclusions(nullptr);
    exporter->TextAsPathOff();
    exporter->SetTitle("ltlab");
    const int* size = window_->GetSize();
    const int w = size[0], h = size[1];
    window_->SetSize(w * scale, h * scale);
    exporter->Write();
    window_->SetSize(w, h);
    gl_->doneCurrent();
    requestRender();
    if (written != path && !QFile::rename(written, path)) return false;
    return QFileInfo(path).size() > 0;
}

QPointF VtkWidget::toDisplay(const QPoint& pos) const {
    const double dpr = pixelRatio();
    return {pos.x() * dpr, height() * dpr - 1 - pos.y() * dpr};
}

void VtkWidget::mousePressEvent(QMouseEvent* event) { last_mouse_ = press_pos_ = event->pos(); }

void VtkWidget::mouseReleaseEvent(QMouseEvent* event) {
    if (event->button() == Qt::LeftButton && (event->pos() - press_pos_).manhattanLength() <= 3)
        emit clicked(toDisplay(event->pos()));
}

void VtkWidget::mouseMoveEvent(QMouseEvent* event) {
    if (event->buttons() == Qt::NoButton) {
        emit hovered(toDisplay(event->pos()), event->globalPosition().toPoint());
        return;
    }
    if (!(event->buttons() & Qt::LeftButton)) return;
    const QPoint d = event->pos() - last_mouse_;
    last_mouse_ = event->pos();
    vtkCamera* camera = renderer_->GetActiveCamera();
    camera->Azimuth(-0.4 * d.x());
    camera->Elevation(0.4 * d.y());
    camera->OrthogonalizeViewUp();
    renderer_->ResetCameraClippingRange();
    requestRender();
}

void VtkWidget::mouseDoubleClickEvent(QMouseEvent*) { resetCamera(); }

void VtkWidget::wheelEvent(QWheelEvent* event) {
    renderer_->GetActiveCamera()->Dolly(event->angleDelta().y() > 0 ? 1.1 : 1 / 1.1);
    renderer_->ResetCameraClippingRange();
    requestRender();
}

} // namespace ltlab::ui
