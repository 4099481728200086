#pragma once
// A widget that hosts a VTK render window. Debian's VTK Qt module is built
// for Qt 5, so ltlab embeds VTK itself: vtkGenericOpenGLRenderWindow renders
// with the context of a QOpenGLWindow into its own framebuffer, which is
// blitted onto the window. The QOpenGLWindow sits in a window container (a
// native child window), not in a QOpenGLWidget: a QOpenGLWidget anywhere in
// the main window makes Qt compose the whole window through OpenGL on every
// repaint, which under software OpenGL cost up to 100 ms a repaint (issue 13).
// Mouse: drag rotates, wheel zooms, double-click resets the camera, a click
// (press and release in place) is reported for picking.

#include <QImage>
#include <QStringList>
#include <QWidget>

#include <vtkSmartPointer.h>

class vtkAxesActor;
class vtkGenericOpenGLRenderWindow;
class vtkRenderer;

namespace ltlab::ui {

class VtkGlWindow;

class VtkWidget : public QWidget {
    Q_OBJECT
public:
    explicit VtkWidget(QWidget* parent = nullptr);
    ~VtkWidget() override;

    vtkRenderer* renderer() const;
    void resetCamera();
    // Axis indicators: a small triad in the lower left corner that turns with
    // the camera, each axis named (e.g. "PC1"); an empty list hides it.
    void setAxisNames(const QStringList& names);
    QStringList axisNames() const;
    // Asks for a new frame (the scene or the camera changed).
    void requestRender();
    // Renders off screen at `scale` times the widget's size (as far as the
    // GL's framebuffer size allows) and saves a PNG.
    bool savePng(const QString& path, int scale = 1);
    QImage renderImage(int scale = 1);
    // PDF through GL2PS: the 3D scene as a raster image at `scale` times the
    // widget's size, 2D text as vector text (GeometryView writes the SVG).
    bool savePdf(const QString& path, int scale = 2);
    // The frame on screen (blank before the first frame).
    QImage grabFramebuffer();
    int framesRendered() const { return frames_; } // for benchmarks and tests
    // Widget coordinates (origin top left) to VTK display coordinates.
    QPointF toDisplay(const QPoint& widget_pos) const;

    // A grab of `top` with the frames of its visible VTK widgets drawn in
    // (QWidget::grab leaves native child windows out).
    static QPixmap grabWithScenes(QWidget* top);

signals:
    void clicked(QPointF display_pos);
    void hovered(QPointF display_pos, QPoint global_pos); // the mouse moves with no button down

protected:
    // Events come from the GL window (a user) or to this widget (tests).
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;

private:
    friend class VtkGlWindow;
    void initializeGl();
    void resizeGl(int w, int h);
    void paintGl();
    double pixelRatio() const;
    void placeAxesMarker(); // its camera follows the scene's; 130 x 130 pixels
    void setMarkerFontScale(int scale);

    VtkGlWindow* gl_ = nullptr;
    vtkSmartPointer<vtkGenericOpenGLRenderWindow> window_;
    vtkSmartPointer<vtkRenderer> renderer_;
    vtkSmartPointer<vtkRenderer> marker_renderer_; // layer 1, over the scene
    vtkSmartPointer<vtkAxesActor> axes_;
    QPoint last_mouse_, press_pos_;
    bool initialized_ = false;
    int frames_ = 0;
};

} // namespace ltlab::ui
